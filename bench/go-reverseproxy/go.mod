module kubegate.bench/goreverseproxy

go 1.19
