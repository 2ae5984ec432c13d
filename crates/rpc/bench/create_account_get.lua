-- create_account as BOINC clients send it (GET, query string; upstream's
-- PHP reads only the query string), unique emails (thread id + counter +
-- a run nonce), with consent. Counts replies without an <authenticator>
-- and prints them at the end ("bad replies: N"), so a run that answers
-- errors cannot pass for a fast one.
local threads = {}
local n = 0
function setup(thread)
  thread:set("tid", n)
  n = n + 1
  table.insert(threads, thread)
end

function init(args)
  prefix = (os.getenv("RPC_BENCH_NONCE") or "r") .. "t" .. (tid or "0") .. "n"
  counter = 0
  bad = 0
  first_bad = ""
end

function request()
  counter = counter + 1
  local id = prefix .. counter
  return wrk.format("GET", "/create_account.php?email_addr=" .. id .. "%40bench.test" ..
    "&passwd_hash=0123456789abcdef0123456789abcdef" ..
    "&user_name=U" .. id .. "&consent_flag=1&source=bench")
end

function response(status, headers, body)
  if status ~= 200 or not body:find("<authenticator>", 1, true) then
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
