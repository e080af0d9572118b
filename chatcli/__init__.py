"""chatcli: a terminal chatbot. Importing the package costs nothing: it holds the version only."""

__version__ = "0.1.0"
