"""ptystudy: the science of the dose x overlap ptychography study (no Prefect here).

Modules: ``physics`` (conventions and forward model), ``config`` (validated study
configuration), ``contract`` (scan files), ``simulate`` (phase C), ``views`` (phase D),
``plan`` (conditions and pre-flight checks), ``layout`` (run directory paths),
``records`` (what phases hand each other), ``report`` (figures), ``summary`` (counts).
"""

__version__ = "0.1.0"
