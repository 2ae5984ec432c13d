-- Per-IP limit overhead: one RPC (RPC_BENCH_RPC = lookup_pw | lookup_exists |
-- lookup_unknown | am_get_info | create), either from 4096 client
-- addresses named in X-Forwarded-For (RPC_BENCH_XFF=1: the limits apply,
-- the server trusts 127.0.0.1 as a proxy) or with no header (the peer,
-- 127.0.0.1, is exempt: no limit work at all).
local keys = {}
local n = 0
local rpc = os.getenv("RPC_BENCH_RPC")
local xff = os.getenv("RPC_BENCH_XFF") == "1"
local nonce = os.getenv("RPC_BENCH_NONCE") or "r"
local hash = "0123456789abcdef0123456789abcdef"

function setup(thread)
  thread:set("tid", n)
  n = n + 1
end

function init(args)
  counter = tonumber(tid) or 0
  prefix = nonce .. "t" .. (tid or "0") .. "n"
  local f = os.getenv("RPC_BENCH_KEYS")
  if f then
    for line in io.lines(f) do
      keys[#keys + 1] = line
    end
  end
end

function request()
  counter = counter + 2 -- two wrk threads: disjoint sequences
  local i = counter % 64
  local path
  if rpc == "lookup_pw" then
    path = "/lookup_account.php?email_addr=seed" .. i .. "%40bench.test&passwd_hash=" .. hash
  elseif rpc == "lookup_exists" then
    path = "/lookup_account.php?email_addr=seed" .. i .. "%40bench.test"
  elseif rpc == "lookup_unknown" then
    path = "/lookup_account.php?email_addr=nobody" .. i .. "%40bench.test"
  elseif rpc == "am_get_info" then
    path = "/am_get_info.php?account_key=" .. keys[i + 1]
  else
    local id = prefix .. counter
    path = "/create_account.php?email_addr=" .. id .. "%40bench.test&passwd_hash=" .. hash ..
      "&user_name=L" .. id .. "&consent_flag=1&source=bench"
  end
  local headers = {}
  if xff then
    local a = counter % 4096
    headers["X-Forwarded-For"] = "10.77." .. math.floor(a / 256) .. "." .. (a % 256)
  end
  return wrk.format("GET", path, headers)
end
