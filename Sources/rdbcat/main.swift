print("rdbcat")
