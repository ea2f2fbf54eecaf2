"""Act on low trust: regenerate, hand to a person, or raise; and score a plain function."""

import queue

from _local_server import openai_server
from openai import OpenAI

import tlm_hooks
from tlm_hooks import fallbacks

with openai_server() as (root, model):
    client = OpenAI(base_url=f"{root}/v1", api_key="local")
    reviews: "queue.Queue[tlm_hooks.LowTrustEvent]" = queue.Queue()
    tlm_hooks.patch(
        client,
        policy=tlm_hooks.TrustPolicy(
            threshold=0.95,  # strict on purpose, so the fallbacks have work to do
            on_low_trust=[fallbacks.Regenerate(attempts=2, temperature=0.9), fallbacks.HumanReview(queue=reviews)],
        ),
    )
    response = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "Who wrote Middlemarch?"}], max_tokens=40)
    actions = response.tlm_metadata.get("fallbacks") or []
    print("what the user sees:", response.choices[0].message.content)
    print("fallbacks that acted:", actions or "none (the first answer was trusted)")
    if reviews.empty():
        print("score of that answer:", round(response.tlm_metadata["trustworthiness_score"], 3))
    else:
        # tlm_metadata scores the last answer the model gave: here the one handed to a person,
        # which the user does not see (they get the holding text above)
        review = reviews.get()
        print(f"waiting for a person: {review.text!r}")
        print(f"score of the answer under review: {review.score:.3f} (threshold {review.threshold})")
    tlm_hooks.unpatch(client)

    # Any function returning a string can be scored; the result is still a str.
    @tlm_hooks.trust_scored(scorer=lambda request: 0.2 if "?" in request.response else 0.9)
    def answer(prompt: str) -> str:
        reply = client.chat.completions.create(model=model, messages=[{"role": "user", "content": prompt}], max_tokens=24)
        return reply.choices[0].message.content or ""

    text = answer("Say hello.")
    print(f"function returned a str: {isinstance(text, str)}; its score: {text.tlm_metadata['trustworthiness_score']} ({text!r})")

    # Fail-closed on low trust: Raise turns it into an exception the app can catch.
    tlm_hooks.patch(client, policy=tlm_hooks.TrustPolicy(threshold=0.999, on_low_trust=[fallbacks.Raise()]))
    try:
        client.chat.completions.create(model=model, messages=[{"role": "user", "content": "Is 1001 prime?"}], max_tokens=24)
    except tlm_hooks.UntrustworthyResponseError as exc:
        print("raised, the app got no answer:", exc)
    else:
        print("score of the answer: above 0.999, so nothing was raised")
