import RDBKit
