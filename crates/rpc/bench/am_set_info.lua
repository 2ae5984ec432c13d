-- am_set_info flipping STATSEXPORT: each request picks the next account
-- (keys from the file in $RPC_BENCH_KEYS) and alternates the flag per account.
local keys = {}
local n = 0
local thread_id = 0

function setup(thread)
  thread:set("tid", n)
  n = n + 1
end

function init(args)
  thread_id = tonumber(tid) or 0
  for line in io.lines(os.getenv("RPC_BENCH_KEYS")) do
    keys[#keys + 1] = line
  end
  counter = thread_id
end

function request()
  counter = counter + 2 -- two wrk threads: disjoint key sequences
  local i = counter % #keys + 1
  local flag = math.floor(counter / #keys) % 2
  local body = "account_key=" .. keys[i] ..
    "&consent_name=STATSEXPORT&consent_flag=" .. flag ..
    "&consent_not_required=0&consent_source=bench"
  return wrk.format("POST", "/am_set_info.php",
    { ["Content-Type"] = "application/x-www-form-urlencoded" }, body)
end
