"""chtcd: hands-off remote submission to CHTC's HTCondor pool from a file-drop queue."""

__version__ = "0.1.0"
