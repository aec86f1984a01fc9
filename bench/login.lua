-- wrk: every request logs one of the benchmark users in (a new session each time), round robin:
-- more than LOGIN_FREE_ATTEMPTS simultaneous attempts on one username would be throttled.
-- $BATON_LOGIN_PREFIX names them (default `bench`: bench0 … bench15).
local prefix = os.getenv("BATON_LOGIN_PREFIX") or "bench"
local n = 0
function request()
  n = n + 1
  return wrk.format("POST", "/api/auth/login", { ["Content-Type"] = "application/json" },
    string.format('{"username":"%s%d","password":"correct horse battery staple"}', prefix, n % 16))
end
