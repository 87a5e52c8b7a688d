module kubegate.bench/nativecore

go 1.19
