-- wrk script: one small non-streamed /api/chat, the request every target is measured with.
wrk.method = "POST"
wrk.body = '{"model":"llama3.2","messages":[{"role":"user","content":"hi"}],"stream":false}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("BENCH_KEY") or "none")
