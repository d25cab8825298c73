"""autolume-graph: a live node-graph engine for StyleGAN visuals."""

from autolume_graph import huge_pages

huge_pages.request()  # before anything allocates a tensor (torch reads the switch once)
