"""`python -m cli` is `cifar-jobs`."""

from cli.main import main

main()
