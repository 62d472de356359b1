"""A generator, oracle and runner that attack the ``archsearch`` command line (see benchmarks/fuzz_cli.py).

oracle:   what each option and value means, written from the documentation, not from the package's checks
fixtures: the files a case needs (data folders, archives, damaged run directories, FIFOs, device nodes)
generate: seeded case generators, one per command surface, each case labelled by the oracle
runner:   each case in a forked child of one parent that imported the package once; classification
"""
