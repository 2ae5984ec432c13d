-- wrk script for the public lookups: LOOKUP_PATH with "%d" replaced by a
-- random id in 1..LOOKUP_MAX on every request (e.g.
-- "/show_user.php?userid=%d&format=xml").
local path = os.getenv("LOOKUP_PATH")
local max = tonumber(os.getenv("LOOKUP_MAX") or "1")
math.randomseed(os.time())
request = function()
  return wrk.format("GET", string.format(path, math.random(1, max)))
end
