"""FLAME Hub entrypoint of pancreas-fl.

Upload the folder that holds this file (the repository's ``src/``) to the FLAME Hub and select
this file as the entrypoint. FLAME runs ``python -u /opt/code/src/pancreas_analysis.py``; the
file's own folder is first on ``sys.path``, so the ``pancreas_fl`` package beside it imports,
and the FLAME SDK preinstalled in the image is used.

To run another configuration, pass parameters to ``main``, for example
``main(strategy="exact", fit_intercept=True)``.
"""

from pancreas_fl import main

if __name__ == "__main__":
    main()
