"""Inference: models applied to arrays and images of any size.

Torch-free (NumPy and ONNX Runtime): ``arrays`` (the caller's array conventions),
``array_model`` (what both backends do around the network), ``tiling``, ``ensemble``,
``onnx_backend``, ``onnx_cache``. With PyTorch: ``model`` (:func:`restorekit.infer.model.
load_model`, :class:`~restorekit.infer.model.RestorationModel`), ``predict``, ``reach``,
``memory``, ``onnx_export``; ``backends`` picks one for the CLI. This package's ``__init__``
imports nothing, so the ONNX path never imports torch.
"""
