"""restorekit in napari (``pip install 'restorekit[napari]'``): dock widgets to denoise a layer
with any model and to train Noise2Void / N2V2 / structN2V on a layer. Declared to napari by the
npe2 manifest ``napari.yaml`` beside this file."""
