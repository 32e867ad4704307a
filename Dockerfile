# An image equivalent to what the FLAME Hub builds for this analysis: FLAME's Python "ml"
# master image (python:3.10, the FLAME SDK, numpy, pandas, scikit-learn) with the uploaded
# folder copied under /opt/code/, running the same entrypoint with working directory /.
# The build context is the Hub upload that `make hub` assembles (dist/hub, holding src/):
#
#   make hub && docker build -t pancreas-fl -f Dockerfile dist/hub
#
# or, as root with buildah, offline but for PyPI and Debian: `make image` (see the README's
# "Building the image"). Nothing of pancreas-fl is pip-installed, exactly as on the Hub: the
# package is found because it sits beside the entrypoint file.
ARG BASE_IMAGE=python:3.10
# hadolint ignore=DL3006
FROM ${BASE_IMAGE}

# The FLAME SDK (distribution "flame", module flame.star), by default from its git repository
# at a pinned tag, as FLAME's images install it (it pulls the core SDK, flamesdk, from git
# itself). FLAME_SDK_SOURCE=wheels installs it from the build context's sdk-wheels/ folder
# instead (flame, and flamesdk at FLAMESDK): for machines that cannot reach GitHub.
ARG FLAME_SDK_SOURCE=git
ARG FLAME_SDK_REPO=https://github.com/PrivateAIM/python-sdk-patterns.git
ARG FLAME_SDK_REF=0.6.4
ARG FLAMESDK=0.5.0

# The ml image's scientific stack, resolved for Python 3.10 (numpy 2.2, pandas 2.3,
# scikit-learn 1.7). Pinned by git tag and release series (hadolint does not read either).
# hadolint ignore=DL3013
RUN --mount=type=bind,target=/tmp/context \
    if [ "$FLAME_SDK_SOURCE" = wheels ]; then \
        pip install --no-cache-dir \
            "/tmp/context/sdk-wheels/flamesdk-${FLAMESDK}-py3-none-any.whl" "opendp>=0.12.1,<0.13" \
            "numpy==2.2.*" "pandas==2.3.*" "scikit-learn==1.7.*" \
        && pip install --no-cache-dir --no-deps \
            "/tmp/context/sdk-wheels/flame-${FLAME_SDK_REF}-py3-none-any.whl"; \
    elif [ "$FLAME_SDK_SOURCE" = git ]; then \
        pip install --no-cache-dir \
            "flame @ git+${FLAME_SDK_REPO}@${FLAME_SDK_REF}" \
            "numpy==2.2.*" "pandas==2.3.*" "scikit-learn==1.7.*"; \
    else \
        echo "FLAME_SDK_SOURCE must be git or wheels, not '${FLAME_SDK_SOURCE}'" >&2; exit 1; \
    fi

# The Hub copies the uploaded folder (folders kept) under /opt/code/.
COPY src/ /opt/code/src/

WORKDIR /
ENV PYTHONDONTWRITEBYTECODE=1
ENTRYPOINT ["python", "-u", "/opt/code/src/pancreas_analysis.py"]
