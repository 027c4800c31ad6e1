// After a sign-in: post the one-time grant to the app's session route, which answers with the
// session cookie (HttpOnly: this script never sees it), then reload so that the page is drawn for
// the session. A browser that keeps refusing the cookie is told so instead of reloading forever.
(async () => {
  const say = (text) => {
    const box = window.document.querySelector(".assess-session-problem");
    if (box) { box.textContent = text; box.style.display = "block"; }
  };
  const store = window.sessionStorage;
  const tries = JSON.parse(store.getItem("assess-session-tries") || "[]")
    .filter((t) => Date.now() - t < 10000);
  if (tries.length >= 3) {
    store.removeItem("assess-session-tries");
    say(__REFUSED__);
    return;
  }
  try {
    const answer = await fetch(__URL__, {method: "POST", body: __GRANT__,
      credentials: "same-origin", cache: "no-store"});
    if (!answer.ok) { say(__FAILED__); return; }
  } catch (e) { say(__FAILED__); return; }
  tries.push(Date.now());
  store.setItem("assess-session-tries", JSON.stringify(tries));
  window.location.reload();
})();
