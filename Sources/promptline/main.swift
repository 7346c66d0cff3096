print("promptline: under construction")
