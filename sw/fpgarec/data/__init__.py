"""Data: RecBole atomic files, the interaction data set, splits, graphs and neighbour samplers."""
