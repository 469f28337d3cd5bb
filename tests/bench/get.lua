-- GET /api/profile/{uid} with uids picked at random from the file $UIDS.
local uids = {}
for line in io.lines(os.getenv("UIDS")) do
  if #line > 0 then uids[#uids + 1] = line end
end
request = function()
  return wrk.format("GET", "/api/profile/" .. uids[math.random(#uids)])
end
