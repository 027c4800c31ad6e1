# The Streamlit scripts run top to bottom on import; their tests drive them through AppTest instead.
collect_ignore_glob = ["assess/app/*"]
