-- wrk: each thread has one connection and follows its own refresh-token chain, so every request
-- spends the token the previous answer handed out (as a real client does).
local tokens = {}
for t in string.gmatch(os.getenv("BATON_TOKENS") or "", "[^,]+") do tokens[#tokens + 1] = t end
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("token", tokens[counter])
end

function request()
  return wrk.format("POST", "/api/auth/refresh", { ["Content-Type"] = "application/json" },
    '{"refreshToken":"' .. token .. '"}')
end

function response(status, headers, body)
  local next_token = string.match(body, '"refreshToken":"([^"]+)"')
  if next_token then token = next_token end
end
