-- One RPC as BOINC clients and account managers send it, for the upstream
-- side-by-side bench (upstream.sh). $RPC_BENCH_RPC names it:
--   create_account     GET, unique emails (thread id + counter + $RPC_BENCH_NONCE)
--   get_project_config GET
--   lookup_account     GET, email + password hash of the seeded accounts
--   am_set_info        POST, STATSEXPORT flipped on the seeded accounts
-- Seeded accounts: $RPC_BENCH_KEYS holds "authenticator email" per line;
-- their password hash is the one create_account sent.
-- Replies without the RPC's success element are counted and printed at
-- the end ("bad replies: N"), so a run answering errors cannot pass for a
-- fast one.
local threads = {}
local n = 0
local HASH = "0123456789abcdef0123456789abcdef"
local want = {
  create_account = "<authenticator>",
  get_project_config = "<project_config>",
  lookup_account = "<authenticator>",
  am_set_info = "<success/>",
}

function setup(thread)
  thread:set("tid", n)
  n = n + 1
  table.insert(threads, thread)
end

function init(args)
  rpc = os.getenv("RPC_BENCH_RPC") or "create_account"
  marker = want[rpc]
  if marker == nil then error("unknown RPC_BENCH_RPC " .. rpc) end
  thread_id = tonumber(tid) or 0
  prefix = (os.getenv("RPC_BENCH_NONCE") or "r") .. "t" .. thread_id .. "n"
  accounts = {}
  local keys = os.getenv("RPC_BENCH_KEYS")
  if keys then
    for line in io.lines(keys) do
      local key, email = line:match("^(%S+)%s+(%S+)$")
      if key then accounts[#accounts + 1] = { key = key, email = email } end
    end
  end
  if (rpc == "lookup_account" or rpc == "am_set_info") and #accounts == 0 then
    error(rpc .. " needs seeded accounts in RPC_BENCH_KEYS")
  end
  counter = thread_id
  bad = 0
  first_bad = ""
end

local function urlencode(s)
  return (s:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", string.byte(c)) end))
end

function request()
  counter = counter + 2 -- two wrk threads: disjoint sequences
  if rpc == "create_account" then
    local id = prefix .. counter
    return wrk.format("GET", "/create_account.php?email_addr=" .. id .. "%40bench.test" ..
      "&passwd_hash=" .. HASH .. "&user_name=U" .. id .. "&consent_flag=1&source=bench")
  elseif rpc == "get_project_config" then
    return wrk.format("GET", "/get_project_config.php")
  end
  local a = accounts[counter % #accounts + 1]
  if rpc == "lookup_account" then
    return wrk.format("GET", "/lookup_account.php?email_addr=" .. urlencode(a.email) ..
      "&passwd_hash=" .. HASH)
  end
  local flag = math.floor(counter / #accounts) % 2
  local body = "account_key=" .. a.key ..
    "&consent_name=STATSEXPORT&consent_flag=" .. flag ..
    "&consent_not_required=0&consent_source=bench"
  return wrk.format("POST", "/am_set_info.php",
    { ["Content-Type"] = "application/x-www-form-urlencoded" }, body)
end

function response(status, headers, body)
  if status ~= 200 or not body:find(marker, 1, true) then
    bad = bad + 1
    if first_bad == "" then first_bad = tostring(status) .. " " .. body:sub(1, 300) end
  end
end

function done(summary, latency, requests)
  local total = 0
  local example = ""
  for _, t in ipairs(threads) do
    total = total + t:get("bad")
    local fb = t:get("first_bad")
    if example == "" and fb and fb ~= "" then example = fb end
  end
  io.write(string.format("bad replies: %d\n", total))
  if example ~= "" then io.write("first bad reply: " .. example:gsub("\n", " ") .. "\n") end
end
