-- create_account with unique emails (thread id + counter + a run nonce),
-- with consent. passwd_hash only needs to be 32 characters.
local n = 0
function setup(thread)
  thread:set("tid", n)
  n = n + 1
end

function init(args)
  prefix = (os.getenv("RPC_BENCH_NONCE") or "r") .. "t" .. (tid or "0") .. "n"
  counter = 0
end

function request()
  counter = counter + 1
  local id = prefix .. counter
  local body = "email_addr=" .. id .. "%40bench.test" ..
    "&passwd_hash=0123456789abcdef0123456789abcdef" ..
    "&user_name=U" .. id .. "&consent_flag=1&source=bench"
  return wrk.format("POST", "/create_account.php",
    { ["Content-Type"] = "application/x-www-form-urlencoded" }, body)
end
