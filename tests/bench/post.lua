-- POST /api/profile with a new profile each time. Emails are
-- b<thread>-<n>@bench.example, so search.lua can look them up.
local counter = 0
local thread_id = 0
local threads = 0
setup = function(thread)
  threads = threads + 1
  thread:set("id", threads)
end
init = function()
  thread_id = id
end
request = function()
  counter = counter + 1
  local body = string.format('{"username":"bench%d","email":"b%d-%d@bench.example"}', counter, thread_id, counter)
  return wrk.format("POST", "/api/profile", {["Content-Type"] = "application/json"}, body)
end
