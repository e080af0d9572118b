"""`python -m chatcli` is the same as the `chatcli` command."""

from chatcli.cli import main

if __name__ == "__main__":
    main()
