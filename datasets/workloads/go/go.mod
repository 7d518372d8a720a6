module tracejoin/tj-go-service

go 1.19
