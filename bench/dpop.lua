-- wrk: GET /api/users/secret with a DPoP-bound access token, a fresh proof per request (a proof is
-- accepted once). $BATON_PROOFS (from bench/dpop.py): the access token, then one proof per line;
-- the threads share the lines out, thread k taking every k-th.
local counter, threads = 0, tonumber(os.getenv("BATON_THREADS") or "1")

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
end

function init(args)
  proofs, next_proof = {}, 1
  local n = 0
  for line in io.lines(os.getenv("BATON_PROOFS")) do
    if n == 0 then
      access = line
    elseif n % threads == id then
      proofs[#proofs + 1] = line
    end
    n = n + 1
  end
end

function request()
  local proof = proofs[next_proof] or proofs[#proofs]
  next_proof = next_proof + 1
  return wrk.format("GET", "/api/users/secret", { ["Authorization"] = "DPoP " .. access, ["DPoP"] = proof })
end
