"""tools/bench_reply.py runs end to end against the local instant server and reports sanely."""

import asyncio

from tools.bench_reply import bench


def test_bench_reports_all_stages_over_20_messages():
    result = asyncio.run(bench(20, None, "bench-model", noise=3))
    for stage in ("ingest_post", "selection", "llm_first_delta", "llm_first_sentence",
                  "chat_to_first_sentence"):
        assert result[stage]["n"] == 20
        assert 0 < result[stage]["p50_ms"] <= result[stage]["p95_ms"]
    assert result["llm_first_delta"]["p50_ms"] <= result["llm_first_sentence"]["p50_ms"]
    # an instant local server: the pre-TTS path is far inside the 500 ms p50 budget
    assert result["chat_to_first_sentence"]["p50_ms"] < 250
