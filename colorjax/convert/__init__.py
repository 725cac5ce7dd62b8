"""Converting PyTorch weights to colorjax checkpoints, without torch.

:mod:`pth_reader` reads ``.pth`` files with an allow-list unpickler; :mod:`eccv16`,
:mod:`siggraph17` and :mod:`vgg16` map the official ECCV16 and SIGGRAPH17 releases and
torchvision's VGG16 onto colorjax modules; :mod:`commands` is
``colorjax convert``.
"""
