"""The key-free heatmap estimate (issue 14): inputs assembled for quantcore.math.liqmodel, and
its evaluation against the simulator's ground truth."""
