# An image equivalent to what the FLAME Hub builds for this analysis: FLAME's Python "ml"
# master image (python:3.10, the FLAME SDK, numpy, pandas, scikit-learn) with the uploaded
# folder copied under /opt/code/, running the same entrypoint with working directory /.
#
#   docker build --build-arg FLAME_SDK_REF=0.6.4 -t pancreas-fl .
#
# Nothing of pancreas-fl is pip-installed, exactly as on the Hub: the package is found
# because it sits beside the entrypoint file.
FROM python:3.10

# The FLAME SDK (distribution "flame", module flame.star) is installed from its git
# repository at a pinned tag; it pulls the core SDK (flamesdk) from git itself.
ARG FLAME_SDK_REPO=https://github.com/PrivateAIM/python-sdk-patterns.git
ARG FLAME_SDK_REF=0.6.4

# The ml image's scientific stack, resolved for Python 3.10 (numpy 2.2, pandas 2.3,
# scikit-learn 1.7). Pinned by git tag and release series (hadolint does not read either).
# hadolint ignore=DL3013
RUN pip install --no-cache-dir \
        "flame @ git+${FLAME_SDK_REPO}@${FLAME_SDK_REF}" \
        "numpy==2.2.*" "pandas==2.3.*" "scikit-learn==1.7.*"

# The Hub copies the uploaded folder (folders kept) under /opt/code/.
COPY src/pancreas_analysis.py /opt/code/src/pancreas_analysis.py
COPY src/pancreas_fl/ /opt/code/src/pancreas_fl/

WORKDIR /
ENV PYTHONDONTWRITEBYTECODE=1
ENTRYPOINT ["python", "-u", "/opt/code/src/pancreas_analysis.py"]
