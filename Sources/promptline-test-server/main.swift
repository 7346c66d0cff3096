print("test server")
