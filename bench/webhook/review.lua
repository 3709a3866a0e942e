-- POSTs a typical Deployment AdmissionReview; RATE (reviews/s over all connections) and
-- CONNS pace each connection with wrk's delay(); RATE=0 sends as fast as answers come.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = assert(io.open(os.getenv("REVIEW_FILE") or "deployment-review.json", "r"))
wrk.body = f:read("*a")
f:close()
local rate = tonumber(os.getenv("RATE") or "0")
local conns = tonumber(os.getenv("CONNS") or "1")
function delay()
  if rate > 0 then
    return 1000 * conns / rate
  end
  return 0
end
