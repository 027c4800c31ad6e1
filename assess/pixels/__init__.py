"""What the pixels themselves give away, beyond any metadata.

``text``: text in the frame (a date imprint, a label card, a ruler) — found, masked, recorded.
``visible``: what differs visibly between visits (white balance, exposure, sharpness, framing) —
measured as a blinding threat and, by study setting, normalized.

These modules read and change arrays; only :mod:`assess.deid` decodes and encodes files.
"""
