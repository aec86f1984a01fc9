-- wrk: each thread has one connection and follows its own refresh-token chain, so every request
-- spends the token the previous answer handed out (as a real client does). BATON_REFRESH_FIELD names
-- the token in the request and the answer: Baton's `refreshToken`, SimpleJWT's `refresh`.
local field = os.getenv("BATON_REFRESH_FIELD") or "refreshToken"
local tokens = {}
for t in string.gmatch(os.getenv("BATON_TOKENS") or "", "[^,]+") do tokens[#tokens + 1] = t end
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("token", tokens[counter])
end

function request()
  return wrk.format("POST", "/api/auth/refresh", { ["Content-Type"] = "application/json" },
    '{"' .. field .. '":"' .. token .. '"}')
end

function response(status, headers, body)
  local next_token = string.match(body, '"' .. field .. '":"([^"]+)"')
  if next_token then token = next_token end
end
