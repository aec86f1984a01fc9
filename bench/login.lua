-- wrk: every request logs the benchmark user in (a new session each time).
function request()
  return wrk.format("POST", "/api/auth/login", { ["Content-Type"] = "application/json" },
    '{"username":"bench0","password":"correct horse battery staple"}')
end
