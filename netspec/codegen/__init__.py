"""Graph -> Python source (``source.generate``) -> nn.Module (``build.build``)."""
