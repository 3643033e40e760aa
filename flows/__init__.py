"""The study's Prefect flows and their command lines.

Importing this package first sets Prefect's environment up (``flows._environment``): its
settings are read when Prefect is imported, so every module that imports Prefect imports
something of ``flows`` before it (the ``environment`` section of the project's import order).
"""

from flows._environment import configure_prefect_environment

configure_prefect_environment()
