"""Studies: many runs of a method or measurement, summarised with statistics, tables and plots.

``bench`` (black-box strategies on tabular ground truth, across seeds), ``compare`` (differentiable
search methods across seeds, as NAS-Bench-201's table), ``proxy_study`` (training-free
proxies against ground truth), ``zero_cost`` (the zero-cost NAS baseline) and ``optbench`` (optimizers on
synthetic functions). The command line (``archsearch.cli.studies``) parses arguments and calls these.
"""
