"""autolume-graph: a live node-graph engine for StyleGAN visuals."""
