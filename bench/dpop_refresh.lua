-- wrk: POST /api/auth/refresh on DPoP-bound sessions, one connection per thread, each following its
-- own chain (as refresh.lua) with a fresh proof by its session's key per request. Thread k reads
-- $BATON_PROOFS-k (from `bench/dpop.py refresh`): the refresh token, then one proof per line.
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
end

function init(args)
  proofs, next_proof = {}, 1
  for line in io.lines(os.getenv("BATON_PROOFS") .. "-" .. id) do
    if token == nil then token = line else proofs[#proofs + 1] = line end
  end
end

function request()
  local proof = proofs[next_proof] or proofs[#proofs]
  next_proof = next_proof + 1
  return wrk.format("POST", "/api/auth/refresh", { ["Content-Type"] = "application/json", ["DPoP"] = proof },
    '{"refreshToken":"' .. token .. '"}')
end

function response(status, headers, body)
  local next_token = string.match(body, '"refreshToken":"([^"]+)"')
  if next_token then token = next_token end
end
