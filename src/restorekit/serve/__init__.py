"""``restorekit serve``: a local web app and REST API that denoise, upscale and train.

``app`` builds the FastAPI application (routes, limits, token), ``jobs`` runs work in a
bounded queue of worker threads (progress, cancel, results with a time to live), ``work`` holds
what a job does (images through a model with :func:`restorekit.infer.files.restore_file`, the
same code as the command line; a time-budgeted training run), ``uploads`` turns uploaded files
into checked files on disk, and ``static/`` is the page (plain HTML and JavaScript, no build
step).
"""
