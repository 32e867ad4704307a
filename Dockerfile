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
# itself), or, with FLAMESDK=0.6.0, that core release from its own repository. For machines
# that cannot reach GitHub, FLAME_SDK_SOURCE=wheels installs flame and flamesdk (FLAMESDK, by
# default 0.5.0, what flame 0.6.4 pins) from the build context's sdk-wheels/ folder instead.
ARG FLAME_SDK_SOURCE=git
ARG FLAME_SDK_REPO=https://github.com/PrivateAIM/python-sdk-patterns.git
ARG FLAME_SDK_REF=0.6.4
ARG FLAMESDK_REPO=https://github.com/PrivateAIM/python-sdk.git
ARG FLAMESDK=

# The ml image's scientific stack, resolved for Python 3.10 (numpy 2.2, pandas 2.3,
# scikit-learn 1.7). Pinned by git tag and release series (hadolint does not read either).
# hadolint ignore=DL3013
RUN --mount=type=bind,target=/tmp/context \
    if [ "$FLAME_SDK_SOURCE" = wheels ]; then \
        pip install --no-cache-dir \
            "/tmp/context/sdk-wheels/flamesdk-${FLAMESDK:-0.5.0}-py3-none-any.whl" \
            "opendp>=0.12.1,<0.13" \
            "numpy==2.2.*" "pandas==2.3.*" "scikit-learn==1.7.*" \
        && pip install --no-cache-dir --no-deps \
            "/tmp/context/sdk-wheels/flame-${FLAME_SDK_REF}-py3-none-any.whl"; \
    elif [ "$FLAME_SDK_SOURCE" = git ] && [ -z "$FLAMESDK" ]; then \
        pip install --no-cache-dir \
            "flame @ git+${FLAME_SDK_REPO}@${FLAME_SDK_REF}" \
            "numpy==2.2.*" "pandas==2.3.*" "scikit-learn==1.7.*"; \
    elif [ "$FLAME_SDK_SOURCE" = git ]; then \
        pip install --no-cache-dir \
            "flamesdk @ git+${FLAMESDK_REPO}@${FLAMESDK}" "opendp>=0.12.1,<0.13" \
            "numpy==2.2.*" "pandas==2.3.*" "scikit-learn==1.7.*" \
        && pip install --no-cache-dir --no-deps "flame @ git+${FLAME_SDK_REPO}@${FLAME_SDK_REF}"; \
    else \
        echo "FLAME_SDK_SOURCE must be git or wheels, not '${FLAME_SDK_SOURCE}'" >&2; exit 1; \
    fi

# The Hub copies the uploaded folder (folders kept) under /opt/code/.
COPY src/ /opt/code/src/

WORKDIR /
ENV PYTHONDONTWRITEBYTECODE=1
ENTRYPOINT ["python", "-u", "/opt/code/src/pancreas_analysis.py"]
