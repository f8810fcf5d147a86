"""The paper config at the paper's shapes, offline, on any machine (``make paper-smoke``).

``models``: the paper's model architectures at full size with random weights, saved in the
hub layouts a user downloads (SD1.5, CLIP ViT-L/14, BLIP-2 OPT-2.7B with fewer OPT layers, an
ImageNet ResNet-50 weights file, an SSCD-shaped TorchScript descriptor).
``datasets``: every data set of ``config/paper.yaml`` written in its published on-disk layout,
a few images each, with the quirks real files have (a PNG named .JPEG, CMYK and grayscale JPEGs,
EXIF rotation, very large and very small images, extreme aspect ratios).
``overlay``: the config overlay that points ``config/paper.yaml`` at them and shrinks its counts.
"""
