"""The networks: the NumPy MLP and its hand-written modules, the PyTorch MLP, the custom Layer
Normalization, the pre-activation ConvNet and ResNet18. Nothing here knows about jobs or training."""
