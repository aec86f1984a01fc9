-- wrk: every request logs one of the benchmark users in (a new session each time), round robin:
-- more than LOGIN_FREE_ATTEMPTS simultaneous attempts on one username would be throttled.
local n = 0
function request()
  n = n + 1
  return wrk.format("POST", "/api/auth/login", { ["Content-Type"] = "application/json" },
    string.format('{"username":"bench%d","password":"correct horse battery staple"}', n % 16))
end
