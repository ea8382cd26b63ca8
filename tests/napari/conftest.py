import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # headless: no display needed
