"""Score traces already logged in MLflow and write the scores back onto them.

Logs a few traces with MLflow's OpenAI autolog (answers from the embedded local model, system
prompt included) into a local SQLite tracking store, then scores every trace of the
experiment with the open engine and prints what MLflow now holds. Set MLFLOW_TRACKING_URI to
use your tracking server instead of the temporary store.
"""

import os
import tempfile

import mlflow
from _local_server import openai_server
from openai import OpenAI

from tlm_hooks import TLMScorer
from tlm_hooks.integrations.mlflow import score_mlflow_traces

QUESTIONS = ["What is the capital of France?", "How many seconds are in a minute?", "Who wrote Hamlet?"]

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
if os.environ.get("MLFLOW_TRACKING_URI"):
    experiment_id = mlflow.set_experiment("tlm-hooks example").experiment_id
else:  # a throwaway store: database and trace artifacts in a temporary directory
    store = tempfile.mkdtemp(prefix="tlm-hooks-mlflow-")
    mlflow.set_tracking_uri(f"sqlite:///{store}/mlflow.db")
    experiment_id = mlflow.create_experiment("tlm-hooks example", artifact_location=f"{store}/artifacts")
    mlflow.set_experiment(experiment_id=experiment_id)

# 1. an app whose OpenAI calls MLflow traces
mlflow.openai.autolog()
with openai_server() as (root, model):
    client = OpenAI(base_url=f"{root}/v1", api_key="local")
    for question in QUESTIONS:
        messages = [
            {"role": "system", "content": "You are a trivia master. Be brief."},
            {"role": "user", "content": question},
        ]
        client.chat.completions.create(model=model, messages=messages, max_tokens=24)
mlflow.openai.autolog(disable=True)

# 2. later: score what was logged (the engine on the embedded model; any Scorer works)
scorer = TLMScorer("base", options={"log": ["explanation"], "max_tokens": 32})
summary = score_mlflow_traces(experiment_id, scorer=scorer)
print(summary)

# 3. the scores are on the traces: tags `trust_score`/`explanation` and a `trust_score` feedback
for trace in mlflow.MlflowClient().search_traces(locations=[experiment_id]):
    tags = trace.info.tags
    print(f"score {float(tags['trust_score']):.3f}  {trace.info.request_preview[:60]!r}")
    print(f"      explanation: {tags.get('explanation', '')[:100]}")
