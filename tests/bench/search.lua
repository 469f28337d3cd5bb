-- GET /api/search?email=... for emails post.lua made (its first 1000 per thread).
request = function()
  return wrk.format("GET", string.format("/api/search?email=b%d-%d@bench.example", math.random(2), math.random(1000)))
end
